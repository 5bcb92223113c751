def write_report(study, outcomes):
    return None
