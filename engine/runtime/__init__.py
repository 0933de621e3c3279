"""Where the engine runs: the device and its AMP settings, and the data-parallel job."""
