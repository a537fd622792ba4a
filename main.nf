#!/usr/bin/env nextflow
/*
========================================================================================
    scdeal: single-cell drug response predicted from bulk cell-line screens
========================================================================================
    Homepage : https://github.com/scdeal/scdeal
    Method   : Chen et al., Nat Commun 13, 6735 (2022), doi:10.1038/s41467-022-34277-7
----------------------------------------------------------------------------------------
*/

include { SCDEAL                  } from './workflows/scdeal'
include { PIPELINE_INITIALISATION } from './subworkflows/local/utils_nfcore_scdeal_pipeline'
include { PIPELINE_COMPLETION     } from './subworkflows/local/utils_nfcore_scdeal_pipeline'

workflow {

    main:
    //
    // Validate parameters and turn the samplesheet into a channel of [ meta, input ]
    //
    PIPELINE_INITIALISATION (
        params.version,
        params.validate_params,
        args,
        params.outdir,
        params.input
    )

    //
    // Run the pipeline
    //
    SCDEAL (
        PIPELINE_INITIALISATION.out.samplesheet,
        file(params.bulk_expression, checkIfExists: true),
        params.bulk_response.tokenize(',').collect { path -> file(path.trim(), checkIfExists: true) },
        params.cosmic_map ? file(params.cosmic_map, checkIfExists: true) : [],
        params.drugs ? file(params.drugs, checkIfExists: true) : []
    )

    //
    // Summary, reports and notifications
    //
    PIPELINE_COMPLETION (
        params.outdir,
        params.monochrome_logs,
        SCDEAL.out.multiqc_report
    )
}
