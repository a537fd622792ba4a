//
// Initialisation and completion of the scdeal pipeline
//

include { paramsSummaryLog       } from 'plugin/nf-schema'
include { samplesheetToList      } from 'plugin/nf-schema'
include { validateParameters     } from 'plugin/nf-schema'

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
    // The profile's paths are built from --full_test_data: without it they would name 'null/...'
    if (workflow.profile.tokenize(',').contains('test_full') && !params.full_test_data) {
        error("-profile test_full reads the public data from --full_test_data <folder> (its bulk/ and sc/ subfolders): see docs/usage.md#full-test-on-the-public-data.")
    }
    log.info paramsSummaryLog(workflow)
    if (validate_params) {
        validateParameters()
    }
    if (nextflow_cli_args) {
        log.warn "Positional arguments are ignored: ${nextflow_cli_args.join(' ')}"
    }
    dumpParametersToJson(outdir)

    //
    // Samplesheet → [ meta, input ]; meta: id, drug, drug_key, species, label_key.
    // Relative paths are read from --input_dir, else from the samplesheet's folder, as the local runner does.
    //
    def input_dir = params.input_dir ? file(params.input_dir) : file(input).parent
    def rows = samplesheetToList(input, "${projectDir}/assets/schema_input.json").collect { meta, path ->
        [ meta + [ drug_key: drugKey(meta.drug), species: meta.species ?: 'human' ], resolveInput(path, input_dir) ]
    }
    def problems = samplesheetProblems(rows)
    if (problems) {
        error("Samplesheet ${input}: ${problems.size()} problem(s):\n  - " + problems.join('\n  - '))
    }
    if (params.drugs && !rows.any { meta, _path -> isScreen(meta) }) {
        log.warn "--drugs ${params.drugs} is read only by samplesheet rows whose drug is 'all' (a screen); ${input} has none"
    }

    emit:
    samplesheet = channel.fromList(rows)
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
    // A task failed on its sample's own bad data (exit status 65) or ran out of memory or time twice is
    // ignored (conf/base.config): every other pair finished and the report was written, then
    // workflow.failOnIgnore (nextflow.config) ends the run non-zero. Here the log says which pairs.
    workflow.onComplete {
        def status = workflow.success ? 'completed' : 'completed with errors'
        log.info "-${workflow.manifest.name}- pipeline ${status}: results in ${outdir}"
        def incomplete = incompletePairs(file("${outdir}/pipeline_info/scdeal_status.tsv"))
        if (workflow.stats.ignoredCount > 0 || incomplete) {
            log.error "${workflow.stats.ignoredCount} task(s) failed on their own data and were ignored; every other (sample, drug) pair finished " +
                "and the run ends with a non-zero exit status. Not complete (sample, drug, step):\n  " + (incomplete ?: [ 'see the execution trace' ]).join('\n  ') +
                "\nStatus of every pair: ${outdir}/pipeline_info/scdeal_status.tsv; a failed sample's problems: its validation task's error; " +
                "task errors: ${outdir}/pipeline_info/execution_trace_${params.trace_report_suffix}.txt"
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
// Output folders use the normalised drug name: `I-BET-762`, `i.bet.762` → `IBET762` (scdeal.data.readers.normalise_name)
//
def drugKey(String drug) {
    return drug.toUpperCase().replaceAll(/[^A-Z0-9]/, '')
}

def resolveInput(String path, input_dir) {
    return path.startsWith('/') || path.contains('://') ? file(path) : input_dir.resolve(path)
}

//
// A row whose drug is `all` (any case) screens every drug of the response tables (scdeal.pipeline.samplesheet.SCREEN_DRUG_KEY)
//
def isScreen(Map meta) {
    return meta.drug_key == 'ALL'
}

//
// What nf-schema cannot check row by row: every input exists, a (sample, normalised drug) pair
// appears once (a screen counts as one pair), a sample has one input and one species, and a screen
// row has no label_key (scdeal.pipeline.samplesheet does the same)
//
def samplesheetProblems(List rows) {
    def problems = []
    def pairs    = [:]
    def samples  = [:]
    rows.eachWithIndex { row, index ->
        def (meta, path) = row
        def line = index + 2  // line 1 is the header
        if (!path.exists()) {
            problems << "line ${line}: input '${path}' of sample '${meta.id}' does not exist"
        }
        if (isScreen(meta) && meta.label_key) {
            problems << "line ${line}: sample '${meta.id}' with drug '${meta.drug}' has label_key '${meta.label_key}': label_key needs a single drug; use a separate row per drug to evaluate"
        }
        def pair = [ meta.id, meta.drug_key ]
        if (pairs.containsKey(pair)) {
            problems << "line ${line}: sample '${meta.id}' with drug '${meta.drug}' repeats line ${pairs[pair]} (drug names are compared as ${meta.drug_key})"
        }
        pairs.putIfAbsent(pair, line)
        def first = samples.putIfAbsent(meta.id, [ path: path, species: meta.species, line: line ])
        if (first && first.path != path) {
            problems << "line ${line}: sample '${meta.id}' names input '${path}' but '${first.path}' on line ${first.line}: one sample id, one input"
        }
        if (first && first.species != meta.species) {
            problems << "line ${line}: sample '${meta.id}' is species '${meta.species}' but '${first.species}' on line ${first.line}: one species per sample"
        }
    }
    return problems
}

//
// params_<trace_report_suffix>.json in pipeline_info, beside the execution reports: every parameter of
// the run. Written to a file in the launch folder, then copied, so an object-store outdir works too.
//
def dumpParametersToJson(outdir) {
    def filename = "params_${params.trace_report_suffix}.json"
    def temp     = new File(workflow.launchDir.toString(), ".${filename}")
    temp.text    = groovy.json.JsonOutput.prettyPrint(groovy.json.JsonOutput.toJson(params))
    nextflow.extension.FilesEx.copyTo(temp.toPath(), "${outdir}/pipeline_info/${filename}")
    temp.delete()
}

//
// Rows of scdeal_status.tsv with a failed step, as "sample, drug, step"
//
def incompletePairs(status_file) {
    if (!status_file.exists()) {
        return []
    }
    def lines = status_file.readLines()
    def header = lines[0].split('\t')
    return lines.drop(1).collectMany { line ->
        def fields = line.split('\t')
        (2..<header.size()).findAll { i -> fields[i] == 'failed' }.collect { i -> "${fields[0]}, ${fields[1]}, ${header[i]}" }
    }
}

//
// One process's versions.yml with the process named without its workflow path (SCDEAL:SCDEAL_CLUSTER → SCDEAL_CLUSTER)
//
def softwareVersionsYaml(versions_file) {
    def yaml = new org.yaml.snakeyaml.Yaml()
    def versions = yaml.load(versions_file.text).collectEntries { process, tools -> [ process.tokenize(':')[-1], tools ] }
    return yaml.dumpAsMap(versions).trim()
}

//
// Parameters used, as MultiQC custom content
//
def paramsSummaryMultiqc(summary_params) {
    def summary_section = ''
    summary_params
        .keySet()
        .each { group ->
            def group_params = summary_params.get(group)
            if (group_params) {
                summary_section += "    <p style=\"font-size:110%\"><b>${group}</b></p>\n"
                summary_section += "    <dl class=\"dl-horizontal\">\n"
                group_params
                    .keySet()
                    .sort()
                    .each { param ->
                        summary_section += "        <dt>${param}</dt><dd><samp>${group_params.get(param) ?: '<span style=\"color:#999999;\">N/A</a>'}</samp></dd>\n"
                    }
                summary_section += "    </dl>\n"
            }
        }

    def yaml_file_text = "id: 'workflow_summary'\n"
    yaml_file_text += "description: ' - this information is collected when the pipeline is started.'\n"
    yaml_file_text += "section_name: 'Parameters used'\n"
    yaml_file_text += "plot_type: 'html'\n"
    yaml_file_text += "data: |\n"
    yaml_file_text += "${summary_section}"
    return yaml_file_text
}

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
