/*
========================================================================================
    scdeal workflow
========================================================================================
    validate                         once per sample, before anything else: only the rows of
                                     samples that pass reach the steps below
    bulk_prepare → bulk_pretrain     once per drug
    cluster                          once per sample (single-drug and screen rows alike)
    transfer → explain, evaluate     once per (sample, drug); evaluate only with a label_key
    screen_prepare → screen_pretrain once per run, if a row's drug is `all` (every drug, or --drugs)
    screen                           once per sample with a drug `all` row
    MultiQC                          once
*/

include { SCDEAL_VALIDATE        } from '../modules/local/scdeal/validate'
include { SCDEAL_BULK_PREPARE    } from '../modules/local/scdeal/bulk_prepare'
include { SCDEAL_BULK_PRETRAIN   } from '../modules/local/scdeal/bulk_pretrain'
include { SCDEAL_CLUSTER         } from '../modules/local/scdeal/cluster'
include { SCDEAL_TRANSFER        } from '../modules/local/scdeal/transfer'
include { SCDEAL_EXPLAIN         } from '../modules/local/scdeal/explain'
include { SCDEAL_EVALUATE        } from '../modules/local/scdeal/evaluate'
include { SCDEAL_SCREEN_PREPARE  } from '../modules/local/scdeal/screen_prepare'
include { SCDEAL_SCREEN_PRETRAIN } from '../modules/local/scdeal/screen_pretrain'
include { SCDEAL_SCREEN          } from '../modules/local/scdeal/screen'
include { MULTIQC                } from '../modules/local/multiqc'
include { paramsSummaryMap       } from 'plugin/nf-schema'
include { isScreen               } from '../subworkflows/local/utils_nfcore_scdeal_pipeline'
include { methodsDescriptionText } from '../subworkflows/local/utils_nfcore_scdeal_pipeline'
include { paramsSummaryMultiqc   } from '../subworkflows/local/utils_nfcore_scdeal_pipeline'
include { softwareVersionsYaml   } from '../subworkflows/local/utils_nfcore_scdeal_pipeline'

workflow SCDEAL {

    take:
    ch_samplesheet   // channel: [ meta(id, drug, drug_key, species, label_key), input ]
    bulk_expression  // file
    bulk_response    // list of files (binary and/or continuous response tables)
    cosmic_map       // file or []
    drugs            // file or []: the screen's drug panel (default: every drug of the response tables)

    main:
    ch_mqc = channel.empty()

    //
    // Each sample read whole and checked (cells, genes, species, genes shared with the bulk table, every
    // row's label column) before any training. A sample with bad data fails here (exit status 65, ignored):
    // its rows go no further, and no bulk model is trained for a drug that no valid sample uses.
    //
    ch_validate_in = ch_samplesheet
        .map { meta, input -> [ meta.id, meta, input ] }
        .groupTuple()
        .map { _id, metas, inputs ->
            def label_keys = metas.collect { meta -> meta.label_key }.findAll { key -> key }.unique().join(',')
            [ metaFor('SCDEAL_VALIDATE', metas[0] + [ label_keys: label_keys ]), inputs[0] ]
        }

    SCDEAL_VALIDATE ( ch_validate_in, bulk_expression )

    ch_valid_rows = ch_samplesheet
        .map { meta, input -> [ meta.id, meta, input ] }
        .combine(SCDEAL_VALIDATE.out.json.map { meta, _json -> [ meta.id ] }, by: 0)
        .map { _id, meta, input -> [ meta, input ] }

    //
    // Rows whose drug is `all` screen the sample against every drug; the others are (sample, drug) pairs
    //
    ch_rows = ch_valid_rows
        .branch { meta, _input ->
            screen: isScreen(meta)
            single: true
        }

    //
    // One set of bulk lines per drug, shared by every sample treated with it. A bulk model is pretrained only
    // where the transfer reads its weights (--member_init pretrained); by default each ensemble member fits its own.
    //
    ch_drugs = ch_rows.single
        .map { meta, _input -> metaFor('SCDEAL_BULK_PREPARE', [ id: meta.drug_key ]) }
        .unique()

    SCDEAL_BULK_PREPARE ( ch_drugs, bulk_expression, bulk_response, cosmic_map )
    ch_mqc = ch_mqc.mix(SCDEAL_BULK_PREPARE.out.mqc.flatten())

    if (params.member_init == 'pretrained') {
        SCDEAL_BULK_PRETRAIN (
            SCDEAL_BULK_PREPARE.out.h5ad.map { meta, bulk -> [ metaFor('SCDEAL_BULK_PRETRAIN', meta), bulk ] }
        )
        ch_mqc = ch_mqc.mix(SCDEAL_BULK_PRETRAIN.out.mqc.flatten())
        ch_bulk = SCDEAL_BULK_PREPARE.out.h5ad
            .join(SCDEAL_BULK_PRETRAIN.out.model)
            .map { meta, bulk, model -> [ meta.id, bulk, model ] }
    }
    else {
        ch_bulk = SCDEAL_BULK_PREPARE.out.h5ad
            .map { meta, bulk -> [ meta.id, bulk, [] ] }
    }

    //
    // The screen's one multi-drug bulk data set and model (screen/_bulk/: no sample id starts with '_'),
    // only when some row screens
    //
    ch_screen_bulk = ch_rows.screen
        .map { _meta, _input -> metaFor('SCDEAL_SCREEN_PREPARE', [ id: '_bulk' ]) }
        .unique()

    SCDEAL_SCREEN_PREPARE ( ch_screen_bulk, bulk_expression, bulk_response, cosmic_map, drugs )
    if (params.member_init == 'pretrained') {
        SCDEAL_SCREEN_PRETRAIN (
            SCDEAL_SCREEN_PREPARE.out.h5ad.map { meta, bulk -> [ metaFor('SCDEAL_SCREEN_PRETRAIN', meta), bulk ] }
        )
        ch_mqc = ch_mqc.mix(SCDEAL_SCREEN_PRETRAIN.out.mqc.flatten())
        ch_screen_model = SCDEAL_SCREEN_PREPARE.out.h5ad
            .join(SCDEAL_SCREEN_PRETRAIN.out.model)
            .map { _meta, bulk, model -> [ bulk, model ] }
    }
    else {
        ch_screen_model = SCDEAL_SCREEN_PREPARE.out.h5ad
            .map { _meta, bulk -> [ bulk, [] ] }
    }

    //
    // One clustering per sample, whatever its rows
    //
    ch_samples = ch_valid_rows
        .map { meta, input -> [ metaFor('SCDEAL_CLUSTER', meta), input ] }
        .unique()

    SCDEAL_CLUSTER ( ch_samples )
    ch_mqc = ch_mqc.mix(SCDEAL_CLUSTER.out.mqc.flatten())

    //
    // Transfer per (sample, drug): the sample's clustered cells + the drug's bulk lines (and pretrained model)
    //
    ch_transfer_in = ch_rows.single
        .map { meta, _input -> [ meta.id, meta ] }
        .combine(SCDEAL_CLUSTER.out.h5ad.map { meta, h5ad -> [ meta.id, h5ad ] }, by: 0)
        .map { _id, meta, cells -> [ meta.drug_key, meta, cells ] }
        .combine(ch_bulk, by: 0)
        .map { _key, meta, cells, bulk, model -> [ metaFor('SCDEAL_TRANSFER', meta), cells, bulk, model ] }

    SCDEAL_TRANSFER ( ch_transfer_in )
    ch_mqc = ch_mqc.mix(SCDEAL_TRANSFER.out.mqc.flatten())

    SCDEAL_EXPLAIN (
        SCDEAL_TRANSFER.out.h5ad
            .join(SCDEAL_TRANSFER.out.cell_model)
            .map { meta, adata, model -> [ metaFor('SCDEAL_EXPLAIN', meta), adata, model ] }
    )
    ch_mqc = ch_mqc.mix(SCDEAL_EXPLAIN.out.mqc.flatten())

    // Only EVALUATE reads the label key: it joins the transfer output here, so editing it reruns EVALUATE alone
    ch_label_keys = ch_rows.single
        .filter { meta, _input -> meta.label_key }
        .map { meta, _input -> [ pairKey(meta), meta.label_key ] }

    SCDEAL_EVALUATE (
        SCDEAL_TRANSFER.out.h5ad
            .map { meta, adata -> [ pairKey(meta), meta, adata ] }
            .join(ch_label_keys)
            .map { _key, meta, adata, label_key -> [ metaFor('SCDEAL_EVALUATE', meta + [ label_key: label_key ]), adata ] }
    )
    ch_mqc = ch_mqc.mix(SCDEAL_EVALUATE.out.mqc.flatten())

    //
    // Screen per sample: the sample's clustered cells + the screen's bulk data (and pretrained model);
    // predictions for every drug in one transfer (no explanation, no evaluation)
    //

    ch_screen_in = ch_rows.screen
        .map { meta, _input -> [ meta.id, meta ] }
        .combine(SCDEAL_CLUSTER.out.h5ad.map { meta, h5ad -> [ meta.id, h5ad ] }, by: 0)
        .combine(ch_screen_model)
        .map { _id, meta, cells, bulk, model -> [ metaFor('SCDEAL_SCREEN', meta), cells, bulk, model ] }

    SCDEAL_SCREEN ( ch_screen_in )
    ch_mqc = ch_mqc.mix(SCDEAL_SCREEN.out.mqc.flatten())

    //
    // Which (sample, drug) pairs and screens got predictions, explanations and evaluations: a task that
    // fails on its own bad data is ignored (conf/base.config), so this table is where those are listed
    //
    ch_samplesheet
        .map { meta, _input -> [ meta.id, meta.drug_key, meta.label_key ? true : false, isScreen(meta) ] }
        .toList()
        .map { rows -> [ rows ] }
        .combine(sampleIds(SCDEAL_VALIDATE.out.json))
        .combine(pairKeys(SCDEAL_TRANSFER.out.predictions))
        .combine(pairKeys(SCDEAL_EXPLAIN.out.signature))
        .combine(pairKeys(SCDEAL_EVALUATE.out.metrics))
        .combine(sampleIds(SCDEAL_SCREEN.out.ranking))
        .map { rows, validated, predicted, explained, evaluated, screened -> statusTable(rows, validated, predicted, explained, evaluated, screened, params.skip_explain) }
        .collectFile(name: 'scdeal_status.tsv', storeDir: "${params.outdir}/pipeline_info")

    //
    // Software versions (every process's versions.yml, through the `versions` topic), parameters
    // and methods → MultiQC
    //
    ch_versions = channel.topic('versions')
        .map { versions -> softwareVersionsYaml(versions) }
        .unique()
        .mix(channel.of(workflowVersionsYaml()))

    // for the report: MultiQC, which reads it, adds its own version in its task
    ch_versions_yml = ch_versions
        .collectFile(name: 'scdeal_software_mqc_versions.yml', sort: true, newLine: true)

    def summary_params = paramsSummaryMap(workflow, parameters_schema: "nextflow_schema.json")
    ch_workflow_summary = channel.value(paramsSummaryMultiqc(summary_params))
        .collectFile(name: 'workflow_summary_mqc.yaml')

    def methods_file = params.multiqc_methods_description ? file(params.multiqc_methods_description, checkIfExists: true) : file("${projectDir}/assets/methods_description_template.yml", checkIfExists: true)
    ch_methods = channel.value(methodsDescriptionText(methods_file))
        .collectFile(name: 'methods_description_mqc.yaml')

    ch_multiqc_config = params.multiqc_config ? file(params.multiqc_config, checkIfExists: true) : file("${projectDir}/assets/multiqc_config.yml", checkIfExists: true)

    MULTIQC (
        ch_mqc.mix(ch_versions_yml, ch_workflow_summary, ch_methods).collect(),
        ch_multiqc_config,
        []
    )

    // pipeline_info: every process's versions, MultiQC's too (known once it has run)
    ch_versions
        .mix(MULTIQC.out.versions.map { versions -> softwareVersionsYaml(versions) })
        .collectFile(storeDir: "${params.outdir}/pipeline_info", name: 'scdeal_software_mqc_versions.yml', sort: true, newLine: true)

    emit:
    multiqc_report = MULTIQC.out.report.toList()
}

/*
========================================================================================
    FUNCTIONS
========================================================================================
*/

//
// The meta fields each process reads (tag, script, output names) and nothing else: the meta map is
// part of a task's cache key, so an unread field would rerun the task when edited (`-resume`).
//
def metaFor(String process, Map meta) {
    def fields = [
        SCDEAL_VALIDATE       : [ 'id', 'species', 'label_keys' ],
        SCDEAL_BULK_PREPARE   : [ 'id' ],
        SCDEAL_BULK_PRETRAIN  : [ 'id' ],
        SCDEAL_CLUSTER        : [ 'id', 'species' ],
        SCDEAL_TRANSFER       : [ 'id', 'drug_key' ],
        SCDEAL_EXPLAIN        : [ 'id', 'drug_key' ],
        SCDEAL_EVALUATE       : [ 'id', 'drug_key', 'label_key' ],
        SCDEAL_SCREEN_PREPARE : [ 'id' ],
        SCDEAL_SCREEN_PRETRAIN: [ 'id' ],
        SCDEAL_SCREEN         : [ 'id' ],
    ]
    return meta.subMap(fields[process])
}

def pairKey(Map meta) {
    return [ meta.id, meta.drug_key ]
}

//
// The (sample, drug) pairs a process produced an output for, as one list (empty when none)
//
def pairKeys(ch_output) {
    return ch_output
        .map { meta, _file -> pairKey(meta) }
        .toList()
        .map { keys -> [ keys ] }
}

//
// The samples a per-sample process (validation, the screen) produced an output for, as one list (empty when none)
//
def sampleIds(ch_output) {
    return ch_output
        .map { meta, _file -> meta.id }
        .toList()
        .map { ids -> [ ids ] }
}

//
// One row per samplesheet row: done, failed (this step, one before it or the sample's validation failed)
// or skipped. A screen row (drug `all`) has predictions only: its explanation and evaluation are skipped.
// The local runner writes the same table (scdeal.pipeline.runner.status_table).
//
def statusTable(List rows, List validated, List predicted, List explained, List evaluated, List screened, boolean skip_explain) {
    def lines = [ "sample\tdrug\tpredictions\texplanation\tevaluation" ]
    rows.each { id, drug_key, labelled, screen ->
        if (!(id in validated)) {
            lines << [ id, drug_key, 'failed', 'failed', 'failed' ].join('\t')
            return
        }
        def key = [ id, drug_key ]
        def predictions = screen ? (id in screened ? 'done' : 'failed') : (key in predicted ? 'done' : 'failed')
        def explanation = screen || skip_explain ? 'skipped' : (key in explained ? 'done' : 'failed')
        def evaluation  = screen || !labelled ? 'skipped' : (key in evaluated ? 'done' : 'failed')
        lines << [ id, drug_key, predictions, explanation, evaluation ].join('\t')
    }
    return lines.join('\n')
}

//
// The pipeline and Nextflow versions, beside the processes' versions
//
def workflowVersionsYaml() {
    return """
    Workflow:
        ${workflow.manifest.name}: v${workflow.manifest.version}
        Nextflow: ${workflow.nextflow.version}
    """.stripIndent().trim()
}
