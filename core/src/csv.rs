//! results.csv: one row per job, for spreadsheets and data frames.
