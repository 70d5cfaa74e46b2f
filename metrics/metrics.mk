# metrics/: libmetrics.a (rating, poll protocol) and metricd, metricview.
metrics_DEPS := metrics common
PROGS += metricd metricview
metricd_MAIN := metrics/metricd.c
metricview_MAIN := metrics/metricview.c
