# api.cmake: unit tests of the API layer's pure parts (routing, the problem table).
lb_unit_test(router fcgi_core)
