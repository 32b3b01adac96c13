"""Serving bundles from other servers: a Triton Inference Server model repository
(`triton_repo`), the Python-backend model it runs (`triton_model.py`, copied into the repository,
never imported here), starting a server on it (`triton_server`) and a small client (`triton_client`)."""
