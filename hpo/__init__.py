"""The HPO service around basset.train(): studies, workers, storage, results."""
