"""`statrepro bench`: figures of the statistics core and of the run path, printed as tables and returned, never
asserted (the calibration bounds that tests assert are ``stats.calibration``'s). One module per figure: speed,
calibration (and the greedy edge cells), advice, sequential (over seeds and over items), control, throughput; the
datasets are ``statrepro.benchmarks``."""
