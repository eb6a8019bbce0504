"""FCDR: Function Call Data Refinement (the paper's automated data refinement). See `runner`."""
