//
// Initialisation and completion of the scdeal pipeline
//

include { paramsSummaryMap       } from 'plugin/nf-schema'
include { samplesheetToList      } from 'plugin/nf-schema'
include { validateParameters     } from 'plugin/nf-schema'
include { paramsHelp             } from 'plugin/nf-schema'

/*
========================================================================================
    SUBWORKFLOW TO INITIALISE PIPELINE
========================================================================================
*/

workflow PIPELINE_INITIALISATION {

    take:
    version           // boolean: display version and exit
    validate_params   // boolean: validate parameters against the schema
    nextflow_cli_args //   array: positional nextflow CLI args
    outdir            //  string: the output directory where the results will be saved
    input             //  string: path to the samplesheet

    main:

    if (version) {
        log.info "${workflow.manifest.name} ${workflow.manifest.version}"
        System.exit(0)
    }
    if (validate_params) {
        validateParameters()
    }
    if (nextflow_cli_args) {
        log.warn "Positional arguments are ignored: ${nextflow_cli_args.join(' ')}"
    }

    //
    // Samplesheet → [ meta, input ]; meta: id, drug, drug_key, species, label_key
    // Relative paths are read from the samplesheet's folder, as the local runner does.
    //
    def sheet_dir = file(input).parent
    ch_samplesheet = channel
        .fromList(samplesheetToList(input, "${projectDir}/assets/schema_input.json"))
        .map { meta, path ->
            def resolved = path.startsWith('/') || path.contains('://') ? file(path) : sheet_dir.resolve(path)
            if (!resolved.exists()) {
                error("Samplesheet ${input}: input '${path}' of sample '${meta.id}' does not exist (resolved to ${resolved}).")
            }
            def drug_key = meta.drug.toUpperCase().replaceAll(/[^A-Z0-9]/, '')
            [ meta + [ drug_key: drug_key, species: meta.species ?: 'human' ], resolved ]
        }

    // One sample id, one input: a sample on several rows (one per drug) must name the same file.
    ch_samplesheet
        .map { meta, path -> [ meta.id, path.toString() ] }
        .groupTuple()
        .map { id, paths ->
            if (paths.unique().size() > 1) {
                error("Samplesheet ${input}: sample '${id}' names several inputs (${paths.unique().join(', ')}): one sample id, one input.")
            }
        }

    emit:
    samplesheet = ch_samplesheet
}

/*
========================================================================================
    SUBWORKFLOW FOR PIPELINE COMPLETION
========================================================================================
*/

workflow PIPELINE_COMPLETION {

    take:
    outdir          //    path: output directory
    monochrome_logs // boolean: disable ANSI colour codes in log output
    multiqc_report  //  string: path to MultiQC report

    main:
    def summary_params = paramsSummaryMap(workflow, parameters_schema: "nextflow_schema.json")

    workflow.onComplete {
        def status = workflow.success ? 'completed' : 'completed with errors'
        log.info "-${workflow.manifest.name}- pipeline ${status}: results in ${outdir}"
        if (workflow.stats.ignoredCount > 0) {
            log.warn "${workflow.stats.ignoredCount} task(s) failed and were skipped; the other samples' outputs are complete. See ${outdir}/pipeline_info/."
        }
    }

    workflow.onError {
        log.error "Pipeline failed. See ${outdir}/pipeline_info/ and the .nextflow.log for details."
    }
}

/*
========================================================================================
    FUNCTIONS
========================================================================================
*/

//
// Methods description for the MultiQC report
//
def methodsDescriptionText(mqc_methods_yaml) {
    def meta = [:]
    meta.workflow = workflow.toMap()
    meta["manifest_map"] = workflow.manifest.toMap()
    meta["doi_text"] = meta.manifest_map.doi ? "(doi: <a href=\'https://doi.org/${meta.manifest_map.doi}\'>${meta.manifest_map.doi}</a>)" : ""
    meta["nodoi_text"] = meta.manifest_map.doi ? "" : "<li>If available, make sure to update the text to include the Zenodo DOI of version of the pipeline used. </li>"
    def methods_text = mqc_methods_yaml.text
    def engine = new groovy.text.SimpleTemplateEngine()
    def description_html = engine.createTemplate(methods_text).make(meta)
    return description_html.toString()
}
