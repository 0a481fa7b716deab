"""berth.client"""
