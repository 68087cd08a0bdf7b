"""Studies: parameter sweeps, race-reproduction and lock-order surveys, their
summaries, plots and the theory they are checked against."""
