"""The BSDS500 benchmarks, reproduced exactly and fast: thinning, pixel matching, boundary
ODS/OIS/AP, regions (covering, PRI, VOI), the bench runner and PR plots."""
