"""Studies: a grid of IMP, fine-tuning and analysis runs derived from one study file, executed resumably.

plan.py reads the study file and derives every run (its script, JSON config, directory and dependencies);
execute.py decides what each run needs (skip, resume, run, refuse) and runs it locally or through submitit;
report.py turns the analyses' JSON outputs into STUDY_DIR/report.md (+ .html, CSV, JSON, PNG).
"""
