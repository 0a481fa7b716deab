"""berth.daemon"""
