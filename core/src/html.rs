//! report.html: one self-contained page with charts, tables and a transcript browser.
