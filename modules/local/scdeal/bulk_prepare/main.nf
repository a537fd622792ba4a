process SCDEAL_BULK_PREPARE {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"

    input:
    val(meta)
    path(bulk_expression, stageAs: '_inputs/expression/*')
    path(bulk_response, stageAs: '_inputs/response_?/*')
    path(cosmic_map, stageAs: '_inputs/cosmic/*')

    output:
    tuple val(meta), path("${prefix}/bulk.h5ad"), emit: h5ad
    path("${prefix}/bulk_summary.json")         , emit: summary
    path("${prefix}/*_mqc.tsv")                 , emit: mqc
    path("versions.yml")                        , emit: versions, topic: versions

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
        --drug ${meta.id} \\
        ${cosmic} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        ${task.ext.flags} \\
        ${args}

    scdeal_versions.py "${task.process}" > versions.yml
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/bulk.h5ad ${prefix}/bulk_summary.json ${prefix}/bulk_${meta.id}_lines_mqc.tsv
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
