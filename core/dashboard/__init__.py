"""What the lab manager watches: quota fill (``heatmap``), production against
the monthly target with forecasts (``production``), per-class ratio progress
against KPIs (``classes``); tables and reports to files (``export``). Every
function is a read that runs on any thread."""
