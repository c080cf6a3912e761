"""HTTP transport on urllib3 (request, downloadFile, uploadFile)."""
