"""Emberwatch: social listening and digital care on AWS Lambda."""
