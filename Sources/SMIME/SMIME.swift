// SMIME module
