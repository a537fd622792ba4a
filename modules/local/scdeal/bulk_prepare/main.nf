process SCDEAL_BULK_PREPARE {
    tag "${meta.id}"
    label 'process_low'

    conda "${projectDir}/environment.yml"
    container "scdeal/scdeal:${workflow.manifest.version}"

    input:
    tuple val(meta), val(drug)
    path(bulk_expression)
    path(bulk_response, stageAs: 'response_?/*')
    path(cosmic_map)

    output:
    tuple val(meta), path("${prefix}/bulk.h5ad"), emit: h5ad
    path("${prefix}/bulk_summary.json")         , emit: summary
    path("versions.yml")                        , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    def cosmic = cosmic_map ? "--cosmic_map ${cosmic_map}" : ''
    """
    scdeal_bulk_prepare.py \\
        --bulk_expression ${bulk_expression} \\
        --bulk_response ${[bulk_response].flatten().join(' ')} \\
        --drug ${drug} \\
        ${cosmic} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        --versions versions.yml \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/bulk.h5ad ${prefix}/bulk_summary.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        scdeal: "${workflow.manifest.version}"
    END_VERSIONS
    """
}
