"""Batch scoring of files: jobs through the prediction service, or Dask past one machine."""
