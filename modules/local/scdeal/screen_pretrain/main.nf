process SCDEAL_SCREEN_PRETRAIN {
    tag "${meta.id}"
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(bulk, stageAs: '_inputs/*')

    output:
    tuple val(meta), path("${prefix}/screen_model.pt")                                       , emit: model
    path("${prefix}/{screen_history.tsv,screen_bulk_metrics.tsv,screen_bulk_metrics.json}") , emit: results
    path("${prefix}/*_mqc.*")                                                                , emit: mqc
    path("versions.yml")                                                                     , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    """
    scdeal_screen_pretrain.py \\
        --bulk ${bulk} \\
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
    touch ${prefix}/screen_model.pt ${prefix}/screen_history.tsv ${prefix}/screen_bulk_metrics.tsv ${prefix}/screen_bulk_metrics.json ${prefix}/screen_bulk_validation_mqc.tsv
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
