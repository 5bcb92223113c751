"""Infrastructure: arguments, files and paths, errors, model and data loading, logging, tracking."""
