/*
========================================================================================
    scdeal workflow
========================================================================================
    bulk_prepare → bulk_pretrain     once per drug
    cluster                          once per sample
    transfer → explain, evaluate     once per (sample, drug); evaluate only with a label_key
    MultiQC                          once
*/

include { SCDEAL_BULK_PREPARE  } from '../modules/local/scdeal/bulk_prepare'
include { SCDEAL_BULK_PRETRAIN } from '../modules/local/scdeal/bulk_pretrain'
include { SCDEAL_CLUSTER       } from '../modules/local/scdeal/cluster'
include { SCDEAL_TRANSFER      } from '../modules/local/scdeal/transfer'
include { SCDEAL_EXPLAIN       } from '../modules/local/scdeal/explain'
include { SCDEAL_EVALUATE      } from '../modules/local/scdeal/evaluate'
include { MULTIQC              } from '../modules/local/multiqc'
include { paramsSummaryMap     } from 'plugin/nf-schema'
include { methodsDescriptionText } from '../subworkflows/local/utils_nfcore_scdeal_pipeline'

workflow SCDEAL {

    take:
    ch_samplesheet   // channel: [ meta(id, drug, drug_key, species, label_key), input ]
    bulk_expression  // file
    bulk_response    // list of files (binary and/or continuous response tables)
    cosmic_map       // file or []

    main:
    ch_versions = channel.empty()
    ch_mqc      = channel.empty()

    //
    // One bulk model per drug, shared by every sample treated with it
    //
    ch_drugs = ch_samplesheet
        .map { meta, _input -> meta.drug_key }
        .unique()
        .map { key -> [ [ id: key ], key ] }

    SCDEAL_BULK_PREPARE ( ch_drugs, bulk_expression, bulk_response, cosmic_map )
    SCDEAL_BULK_PRETRAIN ( SCDEAL_BULK_PREPARE.out.h5ad )
    ch_versions = ch_versions.mix(SCDEAL_BULK_PREPARE.out.versions, SCDEAL_BULK_PRETRAIN.out.versions)
    ch_mqc      = ch_mqc.mix(SCDEAL_BULK_PRETRAIN.out.mqc.flatten())

    //
    // One clustering per sample
    //
    ch_samples = ch_samplesheet
        .map { meta, input -> [ [ id: meta.id, species: meta.species ], input ] }
        .unique()

    SCDEAL_CLUSTER ( ch_samples )
    ch_versions = ch_versions.mix(SCDEAL_CLUSTER.out.versions)
    ch_mqc      = ch_mqc.mix(SCDEAL_CLUSTER.out.mqc.flatten())

    //
    // Transfer per (sample, drug): the sample's clustered cells + the drug's bulk data and model
    //
    ch_bulk = SCDEAL_BULK_PREPARE.out.h5ad
        .join(SCDEAL_BULK_PRETRAIN.out.model)
        .map { meta, bulk, model -> [ meta.id, bulk, model ] }

    ch_transfer_in = ch_samplesheet
        .map { meta, _input -> [ meta.id, meta ] }
        .combine(SCDEAL_CLUSTER.out.h5ad.map { meta, h5ad -> [ meta.id, h5ad ] }, by: 0)
        .map { _id, meta, cells -> [ meta.drug_key, meta, cells ] }
        .combine(ch_bulk, by: 0)
        .map { _key, meta, cells, bulk, model -> [ meta, cells, bulk, model ] }

    SCDEAL_TRANSFER ( ch_transfer_in )
    ch_versions = ch_versions.mix(SCDEAL_TRANSFER.out.versions)
    ch_mqc      = ch_mqc.mix(SCDEAL_TRANSFER.out.mqc.flatten())

    SCDEAL_EXPLAIN ( SCDEAL_TRANSFER.out.h5ad.join(SCDEAL_TRANSFER.out.cell_model) )
    ch_versions = ch_versions.mix(SCDEAL_EXPLAIN.out.versions)
    ch_mqc      = ch_mqc.mix(SCDEAL_EXPLAIN.out.mqc.flatten())

    SCDEAL_EVALUATE ( SCDEAL_TRANSFER.out.h5ad.filter { meta, _h5ad -> meta.label_key } )
    ch_versions = ch_versions.mix(SCDEAL_EVALUATE.out.versions)
    ch_mqc      = ch_mqc.mix(SCDEAL_EVALUATE.out.mqc.flatten())

    //
    // Software versions, parameters and methods → MultiQC
    //
    ch_versions_yml = ch_versions
        .map { f -> f.text }
        .unique()
        .collectFile(storeDir: "${params.outdir}/pipeline_info", name: 'scdeal_software_mqc_versions.yml', sort: true, newLine: true)

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

    emit:
    multiqc_report = MULTIQC.out.report.toList()
    versions       = ch_versions
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
