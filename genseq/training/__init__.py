"""The parts of a training run that ``genseq.train.Trainer`` puts together, one job each:
the resumable state, the clock and budget, the evaluation policy, the non-finite loss policy,
stop signals, the run directory's rules and its log."""
