"""What did the model learn: first-layer filter motifs matched to JASPAR (basset-motifs) and
in-silico saturation mutagenesis (basset-sat)."""
