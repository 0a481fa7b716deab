"""The Go template subset: the forms people write in --format, including Docker Bench for Security's."""

from __future__ import annotations

import pytest

from berth.cli.formatter import ContainerContext, render
from berth.cli.gotypes import typed_container
from berth.cli.template import Template, TemplateError, preformat

INSPECT = {
    "Id": "abc", "Name": "/web", "State": {"Status": "running", "Running": True, "Pid": 42, "ExitCode": 0},
    "Config": {"Hostname": "h", "Env": ["A=1", "B=2"], "Cmd": ["sleep", "1"], "Labels": {"k": "v", "a": "b"},
               "Image": "busybox"},
    "HostConfig": {"Privileged": False, "PidsLimit": None, "CapAdd": None, "Ulimits": None, "SecurityOpt": None,
                   "Memory": 0, "NetworkMode": "none", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                   "Binds": ["/a:/b:ro"]},
    "Mounts": [{"Type": "bind", "Source": "/a", "Destination": "/b", "Mode": "ro", "RW": False,
                "Propagation": "rprivate"}],
    "AppArmorProfile": "",
}


def ex(src: str, data: object, missing_key_error: bool = False) -> str:
    return Template(src, missing_key_error=missing_key_error).execute(data)


@pytest.mark.parametrize(("src", "out"), [
    ("{{.Name}}", "/web"),
    ("{{.State.Status}} {{.State.Pid}}", "running 42"),
    ("{{json .Config.Labels}}", '{"k":"v","a":"b"}'),
    ("{{index .Config.Labels \"k\"}}", "v"),
    ("{{index .Config.Labels \"missing\"}}|", "|"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Labels}}", "map[a:b k:v]"),
    ("{{range .Config.Env}}<{{.}}>{{end}}", "<A=1><B=2>"),
    ("{{range $i, $e := .Config.Cmd}}{{$i}}={{$e}} {{end}}", "0=sleep 1=1 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}};{{end}}", "a:b;k:v;"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if not .HostConfig.Privileged}}safe{{end}}", "safe"),
    ("{{if eq .State.Status \"exited\"}}x{{else if eq .State.Status \"running\"}}r{{else}}?{{end}}", "r"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ("{{with .HostConfig.CapAdd}}caps{{else}}none{{end}}", "none"),
    ("{{len .Config.Env}}", "2"),
    ("{{join .Config.Env \";\"}}", "A=1;B=2"),
    ("{{upper .Name}} {{lower \"AB\"}} {{title \"ab cd\"}}", "/WEB ab Ab Cd"),
    ("{{split \"a:b\" \":\"}}", "[a b]"),
    ("{{printf \"%s-%d\" .Name .State.Pid}}", "/web-42"),
    ("{{pad .Name 1 2}}|{{pad \"\" 1 1}}|", " /web  ||"),
    ("{{truncate .Id 2}}", "ab"),
    ("{{- .Name -}}  \n", "/web"),
    ("a {{/* comment */}} b", "a  b"),
    ("{{$x := .Name}}{{$x}}{{$x = \"y\"}}{{$x}}", "/weby"),
    ("{{range .Config.Env}}{{if eq . \"B=2\"}}{{break}}{{end}}{{.}}{{end}}", "A=1"),
    ("{{(index .Mounts 0).Source}}", "/a"),
    ("{{and .State.Running .Name}} {{or .AppArmorProfile \"none\"}}", "/web none"),
    ("{{.Missing}}", "<no value>"),
    ("{{lt 1 2}} {{ge 2 3}} {{ne .Name \"x\"}}", "true false true"),
])
def test_forms(src: str, out: str) -> None:
    assert ex(src, INSPECT) == out


@pytest.mark.parametrize(("src", "out"), [
    # Docker Bench for Security's checks (tests/5_container_runtime.sh)
    ("AppArmorProfile={{ .AppArmorProfile }}", "AppArmorProfile="),
    ("SecurityOpt={{ .HostConfig.SecurityOpt }}", "SecurityOpt=[]"),
    ("CapAdd={{ .HostConfig.CapAdd }}", "CapAdd=[]"),
    ("{{ .HostConfig.Privileged }}", "false"),
    ("{{.HostConfig.PidsLimit }}", "<nil>"),
    ("Ulimits={{ .HostConfig.Ulimits }}", "Ulimits=[]"),
    ("{{ .HostConfig.Memory }}", "0"),
    ("NetworkMode={{ .HostConfig.NetworkMode }}", "NetworkMode=none"),
    ("{{ .Mounts }}", "[{bind /a /b ro false rprivate}]"),
    ("Propagation={{range $mnt := .Mounts}} {{json $mnt.Propagation}} {{end}}", 'Propagation= "rprivate" '),
    ("{{ .HostConfig.RestartPolicy.MaximumRetryCount }}", "0"),
    ("{{ .State }}", "{running true 42 0 <nil>}"),
    ("{{json .HostConfig.CapAdd}}", "null"),
])
def test_typed_inspect_view(src: str, out: str) -> None:
    assert ex(src, typed_container(INSPECT), missing_key_error=True) == out


@pytest.mark.parametrize(("src", "err"), [
    ("{{.Foo}}", 'template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"'),
    ("{{.Config.CpuShares}}", 'template: :1:9: executing "" at <.Config.CpuShares>: map has no entry for key '
                              '"CpuShares"'),
    ("{{.State.Health.Status}}", 'template: :1:8: executing "" at <.State.Health.Status>: map has no entry for '
                                 'key "Health"'),
])
def test_inspect_errors_read_as_docker(src: str, err: str) -> None:
    # as docker's inspector: the typed object first, then (tryRawInspectFallback) the raw JSON map
    with pytest.raises(TemplateError) as e:
        try:
            ex(src, typed_container(INSPECT), missing_key_error=True)
        except TemplateError:
            ex(src, INSPECT, missing_key_error=True)
    assert str(e.value) == err


@pytest.mark.parametrize(("src", "fragment"), [
    ("{{.Name", "unclosed action"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{if .A}}x", "unexpected EOF"),
    ("{{nosuch .A}}", 'function "nosuch" not defined'),
    ("{{break}}", "{{break}} outside {{range}}"),
])
def test_parse_errors(src: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as e:
        Template(src)
    assert fragment in str(e.value)


def test_preformat_and_table_header() -> None:
    assert preformat("table {{.ID}}\\t{{.Names}}") == ("{{.ID}}\t{{.Names}}", True)
    assert preformat("json") == ("{{json .}}", False)
    row = ContainerContext({"Id": "0123456789abcdef", "Names": ["/web"], "Labels": {"b": "2", "a": "1"},
                            "Command": "sleep 1000000000000000", "Image": "busybox", "Created": 0})
    assert render("table {{.ID}}\t{{.Names}}\t{{.Label \"a\"}}", [row],
                  {"ID": "CONTAINER ID", "Names": "NAMES"}) == \
        "CONTAINER ID   NAMES     \n0123456789ab   web       1\n"
    assert render("{{.Labels}} {{.Command}}", [row]) == 'a=1,b=2 "sleep 1000000000000…"\n'
    assert render("{{json .}}", [row]).startswith('{"Command":"\\"sleep 1000000000000…\\"","CreatedAt":')
