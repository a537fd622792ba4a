process SCDEAL_BULK_PRETRAIN {
    tag "${meta.id}"
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(bulk, stageAs: '_inputs/*')

    output:
    tuple val(meta), path("${prefix}/bulk_model.pt") , emit: model
    path("${prefix}/bulk_{metrics.json,history.tsv}"), emit: results
    path("${prefix}/*_mqc.*")                        , emit: mqc
    path("versions.yml")                             , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    """
    scdeal_bulk_pretrain.py \\
        --bulk ${bulk} \\
        --drug ${meta.id} \\
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
    touch ${prefix}/bulk_model.pt ${prefix}/bulk_metrics.json ${prefix}/bulk_history.tsv ${prefix}/bulk_${meta.id}_mqc.tsv
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
