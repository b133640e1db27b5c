// MIME module
