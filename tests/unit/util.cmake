# util.cmake: unit tests of fcgi/util (file helpers, configuration snapshots, users and modes).
lb_unit_test(fsutil lb_util)
lb_unit_test(cfgsnap lb_util)
lb_unit_test(ident lb_util)
