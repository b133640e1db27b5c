// Milter module
