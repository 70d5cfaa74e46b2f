# metrics/: libmetrics.a (rating, poll protocol and client, lbcd codec, agent)
# and the programs metricd, metricview.
metrics_DEPS := metrics common
PROGS += metricd metricview
metricd_MAIN := metrics/metricd.c
metricview_MAIN := metrics/metricview.c
metrics_TESTS += test_metric_rating test_metric_proto test_metric_lbcd test_metric_poll
metrics_TESTS += test_metric_view
