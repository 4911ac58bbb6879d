"""Ingestion: from object-store notifications to verified products in their family buckets."""
