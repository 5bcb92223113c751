"""One module per task: its arguments, data, model and metric."""
