"""The networks (DCAN, U-Net) and the registry that builds them from a TrainConfig.

Importing this package or its registry does not import torch; the network modules do.
"""
