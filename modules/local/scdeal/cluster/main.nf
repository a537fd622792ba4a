process SCDEAL_CLUSTER {
    tag "${meta.id}"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(input, stageAs: '_inputs/*')

    output:
    tuple val(meta), path("${prefix}/${meta.id}.clustered.h5ad"), emit: h5ad
    path("${prefix}/${meta.id}_cluster_summary.json")           , emit: summary
    path("${prefix}/*_mqc.*")                                   , emit: mqc
    path("versions.yml")                                        , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}"
    """
    scdeal_cluster.py \\
        --input ${input} \\
        --sample ${meta.id} \\
        --species ${meta.species} \\
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
    touch ${prefix}/${meta.id}.clustered.h5ad ${prefix}/${meta.id}_cluster_summary.json ${prefix}/${meta.id}_cluster_mqc.tsv
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
