import pytest

from berth.errors import InvalidArgument
from berth.oci import reference


@pytest.mark.parametrize("text,full,familiar", [
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/library/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
    ("user/app:v1.2", "docker.io/user/app:v1.2", "user/app:v1.2"),
    ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
    ("localhost/a", "localhost/a", "localhost/a"),
    ("quay.io/org/img@sha256:" + "a" * 64, "quay.io/org/img@sha256:" + "a" * 64, "quay.io/org/img@sha256:" + "a" * 64),
    ("busybox:1@sha256:" + "b" * 64, "docker.io/library/busybox:1@sha256:" + "b" * 64, "busybox:1@sha256:" + "b" * 64),
])
def test_parse_normalises_like_docker(text: str, full: str, familiar: str) -> None:
    r = reference.parse(text)
    assert str(r) == full
    assert r.familiar() == familiar


def test_default_tag() -> None:
    assert str(reference.parse_tagged("busybox")) == "docker.io/library/busybox:latest"
    d = "sha256:" + "c" * 64
    assert reference.parse_tagged("busybox@" + d).tag is None


@pytest.mark.parametrize("text,msg", [
    ("Busybox", "repository name (library/Busybox) must be lowercase"),
    ("quay.io/Org/x", "repository name (Org/x) must be lowercase"),
    ("busybox:bad tag", "invalid reference format"),
    ("busybox:" + "t" * 129, "invalid reference format"),
    ("", "invalid reference format"),
    ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("-bad/name", "invalid reference format"),
    ("x/" + "a" * 260, "must not be more than 255 characters"),
])
def test_invalid_names_are_refused_with_dockers_messages(text: str, msg: str) -> None:
    with pytest.raises(InvalidArgument, match=msg.replace("(", r"\(").replace(")", r"\)")):
        reference.parse(text)


def test_uppercase_tag_is_fine() -> None:
    assert reference.parse("busybox:V1_Test").tag == "V1_Test"
