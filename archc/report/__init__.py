"""Reports for people and papers: the layer summary and the stage table, in every table format."""
