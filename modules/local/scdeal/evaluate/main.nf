process SCDEAL_EVALUATE {
    tag "${meta.id}:${meta.drug_key}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(adata, stageAs: '_inputs/*')

    output:
    tuple val(meta), path("${prefix}/metrics.tsv")   , emit: metrics
    path("${prefix}/{confusion.tsv,evaluation.json}"), emit: results
    path("${prefix}/*_mqc.*")                        , emit: mqc
    path("versions.yml")                             , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    scdeal_evaluate.py \\
        --adata ${adata} \\
        --label_key '${meta.label_key}' \\
        --sample ${meta.id} \\
        --drug ${meta.drug_key} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        ${task.ext.flags} \\
        ${args}

    scdeal_versions.py "${task.process}" > versions.yml
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/metrics.tsv ${prefix}/confusion.tsv ${prefix}/evaluation.json ${prefix}/${meta.id}_${meta.drug_key}_evaluation_mqc.tsv
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
