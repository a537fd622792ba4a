process SCDEAL_EVALUATE {
    tag "${meta.id}:${meta.drug_key}"
    label 'process_single'

    conda "${projectDir}/environment.yml"
    container "scdeal/scdeal:${workflow.manifest.version}"

    input:
    tuple val(meta), path(adata)

    output:
    tuple val(meta), path("${prefix}/metrics.tsv")   , emit: metrics
    path("${prefix}/{confusion.tsv,evaluation.json}"), emit: results
    path("${prefix}/*_mqc.*")                        , emit: mqc
    path("versions.yml")                             , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    scdeal_evaluate.py \\
        --adata ${adata} \\
        --label_key ${meta.label_key} \\
        --sample ${meta.id} \\
        --drug ${meta.drug_key} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        --versions versions.yml \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/metrics.tsv ${prefix}/confusion.tsv ${prefix}/evaluation.json ${prefix}/${meta.id}_${meta.drug_key}_evaluation_mqc.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        scdeal: "${workflow.manifest.version}"
    END_VERSIONS
    """
}
