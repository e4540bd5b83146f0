// Sweeps and reports.
