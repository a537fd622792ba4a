"""Pipeline layer: the command line, the local runner and the configuration it shares with the
Nextflow layer, input checks, MultiQC report content, provenance and the pipeline steps."""
