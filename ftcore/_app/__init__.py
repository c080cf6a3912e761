"""The application on top of the API: the command line, the offline demo and its servers,
the progress bar."""
