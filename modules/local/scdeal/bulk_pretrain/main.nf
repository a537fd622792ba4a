process SCDEAL_BULK_PRETRAIN {
    tag "${meta.id}"
    label 'process_medium'

    conda "${projectDir}/environment.yml"
    container "scdeal/scdeal:${workflow.manifest.version}"

    input:
    tuple val(meta), path(bulk)

    output:
    tuple val(meta), path("${prefix}/bulk_model.pt") , emit: model
    path("${prefix}/bulk_{metrics.json,history.tsv}"), emit: results
    path("${prefix}/*_mqc.*")                        , emit: mqc
    path("versions.yml")                             , emit: versions

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
        --versions versions.yml \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/bulk_model.pt ${prefix}/bulk_metrics.json ${prefix}/bulk_history.tsv ${prefix}/bulk_${meta.id}_mqc.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        scdeal: "${workflow.manifest.version}"
    END_VERSIONS
    """
}
