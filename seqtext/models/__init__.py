"""Models: each a dataclass config and an ``nn.Module`` built from it; the config is what a checkpoint stores."""
