process SCDEAL_SCREEN_PREPARE {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"

    input:
    val(meta)
    path(bulk_expression, stageAs: '_inputs/expression/*')
    path(bulk_response, stageAs: '_inputs/response_?/*')
    path(cosmic_map, stageAs: '_inputs/cosmic/*')
    path(drugs, stageAs: '_inputs/drugs/*')

    output:
    tuple val(meta), path("${prefix}/screen_bulk.h5ad"), emit: h5ad
    path("${prefix}/screen_bulk_summary.json")         , emit: summary
    path("versions.yml")                               , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    def cosmic = cosmic_map ? "--cosmic_map ${cosmic_map}" : ''
    def panel  = drugs ? "--drugs ${drugs}" : ''
    """
    scdeal_screen_prepare.py \\
        --bulk_expression ${bulk_expression} \\
        --bulk_response ${[bulk_response].flatten().join(' ')} \\
        ${cosmic} \\
        ${panel} \\
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
    touch ${prefix}/screen_bulk.h5ad ${prefix}/screen_bulk_summary.json
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
