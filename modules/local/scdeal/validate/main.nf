process SCDEAL_VALIDATE {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(input, stageAs: '_inputs/input/*')
    path(bulk_expression, stageAs: '_inputs/expression/*')

    output:
    tuple val(meta), path("${prefix}/${meta.id}.validation.json"), emit: json
    path("versions.yml")                                         , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args   = task.ext.args ?: ''
    prefix     = task.ext.prefix ?: "${meta.id}"
    // the label columns of every row of the sample: a missing one fails the sample here, before any training
    def labels = meta.label_keys ? "--label_keys '${meta.label_keys}'" : ''
    """
    scdeal_validate.py \\
        --input ${input} \\
        --sample ${meta.id} \\
        --species ${meta.species} \\
        ${labels} \\
        --bulk_expression ${bulk_expression} \\
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
    touch ${prefix}/${meta.id}.validation.json
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
