"""berth.oci"""
