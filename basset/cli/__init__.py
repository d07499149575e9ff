"""Every console script of the trainer (basset-train, -test, -predict, -preprocess, -features,
-demo-data, -motifs, -sat): its parser and main, and the shared plumbing (one-line errors with
exit code 2, device and split flags). Nothing outside this package (and hpo's CLI) parses
arguments."""
