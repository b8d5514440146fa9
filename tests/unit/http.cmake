# http.cmake: unit tests of the http layer's pure parts (FastCGI record framing of parked
# requests).
lb_unit_test(fcgirec fcgi_core)
