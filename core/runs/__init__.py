"""Training and evaluation runs: records, the queue that starts them, their results and the loop.

The run itself is a separate process (:mod:`core.training`); nothing here imports torch.
"""
